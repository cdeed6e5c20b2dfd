"""A simulator of PeopleSoft, SnapLogic, SAP and VDS over real HTTP, for tests and the demo.

The product never imports this package; `dataload sandbox`, tests and benchmarks do.
Entry points: `dataload.sandbox.app.create_app`, `dataload.sandbox.server.running_sandbox`.
"""

__all__: list[str] = []
