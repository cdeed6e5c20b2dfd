"""`dataload demo`: the whole product on one machine, and the background Prefect server it uses."""

from dataload.demo.run import DEMO_DATABASE, DemoOptions, run_demo, stop_demo

__all__ = ["DEMO_DATABASE", "DemoOptions", "run_demo", "stop_demo"]
