"""`python -m host` runs the console script."""

from host.cli import main

main()
