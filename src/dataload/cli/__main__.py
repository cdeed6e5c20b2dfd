"""`python -m dataload.cli`: the `dataload` command."""

from dataload.cli import main

main()
