"""`uplift segment` — placeholder until its issue lands (replaced by the owner of that issue)."""


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="(not built yet)")
    p.set_defaults(run=lambda args: (_ for _ in ()).throw(SystemExit("uplift segment is not built yet")))
