"""``python -m proxima``: the command line."""

from proxima.cli import main

main()
