"""dataload schema: the shape of a domain as its runs observed it, its drift run by run, what
one service receives, and the contract that freezes part of it."""

from __future__ import annotations

import typer

from dataload.cli.errors import fail
from dataload.cli.lake import on_lake

__all__ = ["render_tree", "schema"]

_ON_BREAK = ("discard_row", "discard_value", "freeze")


def schema(
    domain: str = typer.Argument(..., help="a domain of the lake (dataload domains)"),
    history: bool = typer.Option(False, "--history", help="The drift, run by run."),
    service: str = typer.Option(
        None, "--service", "-s", help="What this service receives (and its contract's rules)."
    ),
    require: str = typer.Option(
        None,
        "--require",
        metavar="PATH",
        help="Contract: every record holds PATH (* with --service: every path of the service).",
    ),
    freeze: str = typer.Option(
        None,
        "--freeze",
        metavar="PATH",
        help="Contract: the types at PATH and below it stay "
        "those of the accepted shape (* with --service: every path of the service).",
    ),
    on_break: str = typer.Option(
        "discard_row",
        "--on-break",
        help="What a record that breaks the rule costs: discard_row (rejected with its reason),"
        " discard_value (the value dropped, the record stored) or freeze (the run fails).",
    ),
    evolve: str = typer.Option(
        None, "--evolve", metavar="PATH", help="Drop the contract's rules on PATH (of --service)."
    ),
) -> None:
    """The shape of what a domain's runs loaded: paths (or columns), types and counts."""
    from dataload.lake import shape_report as report
    from dataload.lake.domains import load_domains

    if on_break not in _ON_BREAK:
        raise fail(f"--on-break takes {', '.join(_ON_BREAK)}, not {on_break!r}")
    owner = service or ""

    def rule_path(path: str) -> str:
        if path == "*":
            if not service:
                raise fail("* (every path of a service) needs --service")
            return ""
        return path

    async def work(conn):
        if domain not in await load_domains(conn):
            raise fail(f"the lake has no domain {domain!r} (dataload domains lists them)")
        changed = False
        async with conn.transaction():
            for path, rule in ((require, "required"), (freeze, "frozen")):
                if path is not None:
                    await report.set_contract(conn, domain, owner, rule_path(path), rule, on_break)
                    changed = True
            if evolve is not None:
                dropped = await report.drop_contract(conn, domain, owner, rule_path(evolve))
                if not dropped:
                    raise fail(f"no contract rule on {evolve} of {service or domain}")
                changed = True
        paths = None
        if service:
            paths = await report.service_paths(conn, domain, service)
            if paths is None:
                raise fail(f"{domain} has no service {service!r} (dataload services list {domain})")
        return (
            await report.read_shape(conn, domain),
            await report.read_history(conn, domain) if history else [],
            await report.read_contract(conn, domain),
            paths,
            changed,
        )

    shape, runs, contract, paths, changed = on_lake(work)
    if changed:
        typer.echo(f"contract of {domain}: " + (describe_contract(contract) or "none (evolve)"))
    if history:
        for line in render_history(domain, runs):
            typer.echo(line)
        return
    if shape is None:
        typer.echo(f"{domain}: no run has observed a shape yet (dataload run {domain})")
        return
    for line in render_tree(domain, shape, contract, service=service, service_paths=paths):
        typer.echo(line)


def describe_contract(rules) -> str:
    return "; ".join(
        f"{r.service or 'domain'}: {r.path or 'every path'} {r.rule} ({r.on_break})" for r in rules
    )


def _tokens(path: str) -> list[str]:
    tokens = []
    for segment in path.lstrip("/").split("/"):
        name = segment
        elements = 0
        while name.endswith("[]"):
            name, elements = name[:-2], elements + 1
        if name:
            tokens.append(name)
        tokens += ["[]"] * elements
    return tokens


def render_tree(domain, shape, contract, *, service=None, service_paths=None) -> list[str]:
    """The shape as an indented tree: a line per path with its types and record counts; with a
    service, only what its paths let through, and its paths that no record holds."""
    from dataload.lake.shape_report import within

    entries = shape.entries
    if service_paths is not None:  # the service's paths, and the objects on the way to them
        entries = [
            e
            for e in entries
            if any(
                within(e.path, p) or p.startswith(e.path.replace("[]", "") + "/")
                for p in service_paths
            )
        ]
    by_path: dict[str, list] = {}
    for entry in entries:
        by_path.setdefault(entry.path, []).append(entry)
    marks: dict[str, list[str]] = {}
    for rule in contract:
        if service and rule.service not in ("", service):
            continue
        targets = [rule.path] if rule.path else (service_paths or []) if rule.service else []
        for target in targets:
            marks.setdefault(target, []).append(f"{rule.rule} by {rule.service or domain}")
    state = "accepted" if shape.accepted else "not accepted: runs compare with an earlier one"
    head = (
        f"{domain}: shape of run {shape.run_id} ({shape.status}, "
        f"{shape.started:%Y-%m-%d %H:%M}, {state}): {shape.records:,} records, "
        f"{len({e.path for e in shape.entries})} paths"
    )
    if service:
        head = f"{service} receives from {head}; these (with the objects on the way):"
    lines = [head]
    width = min(
        52, max((2 * (len(_tokens(p)) - 1) + len(_tokens(p)[-1]) for p in by_path), default=10)
    )
    for path, found in by_path.items():
        tokens = _tokens(path)
        name = "  " * (len(tokens) - 1) + tokens[-1]
        types = ", ".join(f"{e.type} {e.records:,}" for e in found)
        mark = marks.get(path.replace("[]", ""))
        lines.append(f"  {name:<{width}}  {types}" + (f"  [{'; '.join(mark)}]" if mark else ""))
    if service_paths is not None:
        held = {p for p in service_paths if any(within(e.path, p) for e in shape.entries)}
        lacking = [p for p in service_paths if p not in held]
        if lacking:
            lines.append(f"  in no record: {', '.join(lacking)}")
    return lines


def render_history(domain, runs) -> list[str]:
    if not runs:
        return [f"{domain}: no run has observed a shape yet"]
    lines = []
    seen_accepted = False
    for run in runs:
        state = "accepted" if run.accepted else "not accepted"
        lines.append(
            f"run {run.run_id}  {run.started:%Y-%m-%d %H:%M}  {run.status:<11}"
            f"{run.records:>9,} records  {state}"
        )
        if run.changes:
            lines += [f"  {change}" for change in run.changes]
        else:
            lines.append("  no drift" if seen_accepted else "  first shape")
        seen_accepted = seen_accepted or run.accepted
    return lines
