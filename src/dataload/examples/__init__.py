"""The example domains: the pipelines of seeds 001-004, declared with the domain API.

Each module declares one domain (`DOMAIN`), registered in pyproject.toml's
`dataload.domains` entry points like any plugin's. Their systems are simulated by the sandbox
(sandbox/examples/); each real URL is a setting that defaults to the public service.
"""
