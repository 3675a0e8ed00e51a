"""`python -m tracecli` runs the same CLI as the console script."""

from tracecli.cli import main

main()
