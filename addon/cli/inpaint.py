"""`uplift inpaint` — placeholder until its issue lands (replaced by the owner of that issue)."""


def add_parser(sub) -> None:
    p = sub.add_parser("inpaint", help="(not built yet)")
    p.set_defaults(run=lambda args: (_ for _ in ()).throw(SystemExit("uplift inpaint is not built yet")))
