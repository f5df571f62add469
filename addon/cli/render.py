"""`uplift render` — placeholder until its issue lands (replaced by the owner of that issue)."""


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="(not built yet)")
    p.set_defaults(run=lambda args: (_ for _ in ()).throw(SystemExit("uplift render is not built yet")))
