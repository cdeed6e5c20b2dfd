"""`dataload sandbox`: the source-system simulator as a server."""

from __future__ import annotations

import typer

from dataload.cli.errors import fail


def sandbox(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8800, help="Port to listen on."),
    people: int = typer.Option(2000, help="People present on day 1."),
    seed: int = typer.Option(42, help="Seed of the synthetic university."),
    day: int = typer.Option(1, min=1, help="Day of the university's life to serve."),
    start_date: str = typer.Option("2026-05-01", help="Calendar date of day 1 (YYYY-MM-DD)."),
    latency_ms: str = typer.Option("0", help="Ms to each answer: 50, 10-200 (uniform), ~50 (exp)."),
    fault_rate: float = typer.Option(0.0, help="Rate of 5xx answers on every endpoint."),
    hang_rate: float = typer.Option(0.0, help="Rate of requests that never answer."),
    malformed_rate: float = typer.Option(0.0, help="Rate of truncated JSON bodies."),
    html_login_rate: float = typer.Option(0.0, help="Rate of HTML login pages instead of JSON."),
    unauthorized_rate: float = typer.Option(0.0, help="Rate of 401 whatever the credentials."),
    error_body_rate: float = typer.Option(0.0, help="Rate of 200 answers with an error body."),
    fault: list[str] | None = typer.Option(  # noqa: B008 - typer's idiom for a repeatable option
        None, help="Per-endpoint fault, ENDPOINT:KIND=RATE (repeatable), e.g. sap:http_5xx=1."
    ),
    concurrency_limit: int = typer.Option(10, help="Concurrent calls per SnapLogic task."),
    retry_after_s: int = typer.Option(1, help="Retry-After of the 429 beyond the limit."),
    hang_s: float = typer.Option(600.0, help="How long a hung request hangs (then 504)."),
    empty_object_rate: float = typer.Option(0.01, help="Rate of {} in person results."),
    left_out_rate: float = typer.Option(
        0.0, help="Rate, per request and person, of people left out of a person answer."
    ),
    drift: list[str] | None = typer.Option(  # noqa: B008 - typer's idiom for a repeatable option
        None,
        help="Person documents drift from a day on (repeatable): PATH=NEWNAME@DAY renames "
        "(/personBasic/birthDate=dateOfBirth@2), PATH:TYPE@DAY retypes (.../currentGpa:string@2).",
    ),
    vds_page_size: int = typer.Option(200, help="Entries per VDS page."),
    alias_rate: float = typer.Option(0.2, help="Share of PeopleSoft rows with A. fields."),
    cs_env: str = typer.Option("test", help="The csEnv SnapLogic accepts (CS_ENV)."),
    courses_per_term: int = typer.Option(120, help="Courses in a regular term."),
    ps_user: str = typer.Option("sandbox", help="PeopleSoft user accepted."),
    ps_password: str = typer.Option("sandbox", help="PeopleSoft password accepted."),
    course_key: str = typer.Option("sandbox-course-key", help="SnapLogic course key accepted."),
    person_key: str = typer.Option("sandbox-person-key", help="SnapLogic person key accepted."),
    sap_key: str = typer.Option("sandbox-sap-key", help="SAP key accepted."),
    vds_user: str = typer.Option("sandbox", help="VDS user accepted."),
    vds_password: str = typer.Option("sandbox", help="VDS password accepted."),
    env_file: str = typer.Option(
        None, "--env-file", help="Write the variables that point dataload at it to this file."
    ),
) -> None:
    """Run the simulator of PeopleSoft, SnapLogic, SAP and VDS as a server."""
    from datetime import date

    from dataload.sandbox.config import Credentials, Faults, Latency, SandboxConfig
    from dataload.sandbox.server import environment, serve

    try:
        config = SandboxConfig(
            seed=seed,
            people=people,
            day=day,
            start_date=date.fromisoformat(start_date),
            courses_per_term=courses_per_term,
            latency=Latency.parse(latency_ms),
            faults=Faults(
                http_5xx_rate=fault_rate,
                hang_rate=hang_rate,
                malformed_json_rate=malformed_rate,
                html_login_rate=html_login_rate,
                unauthorized_rate=unauthorized_rate,
                error_body_rate=error_body_rate,
            ),
            snaplogic_concurrency_limit=concurrency_limit,
            retry_after_s=retry_after_s,
            hang_s=hang_s,
            alias_rate=alias_rate,
            cs_env=cs_env,
            empty_object_rate=empty_object_rate,
            left_out_rate=left_out_rate,
            vds_page_size=vds_page_size,
            credentials=Credentials(
                ps_user, ps_password, course_key, person_key, sap_key, vds_user, vds_password
            ),
        )
        for spec in fault or []:
            config.set_endpoint_fault(spec)
        from dataload.sandbox.drift import Drift

        config.drifts = [Drift.parse(spec) for spec in drift or []]
    except ValueError as exc:
        raise fail(f"sandbox not started: {exc}") from None
    base_url = f"http://{host}:{port}"
    # The sandbox's credentials are its own command-line defaults, not secrets: shown whole,
    # so that they can be pasted.
    variables = environment(config, base_url)
    typer.echo(f"sandbox on {base_url} (truth: {base_url}/_sandbox/truth); point dataload at it:")
    if env_file:
        from pathlib import Path

        lines = "".join(f"{name}={value}\n" for name, value in variables.items())
        Path(env_file).write_text(f"# dataload sandbox on {base_url}\n{lines}")
        typer.echo(f"  wrote {env_file} (copy it to .env in the directory you run dataload in)")
    else:
        import shlex

        for name, value in variables.items():
            typer.echo(f"  export {name}={shlex.quote(value)}")
    try:
        serve(config, host, port)
    except OSError as exc:
        raise fail(f"sandbox cannot listen on {host}:{port}: {exc}") from None
