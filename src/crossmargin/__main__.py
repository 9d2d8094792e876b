"""``python -m crossmargin``: the command line."""

from crossmargin.cli import main

main()
