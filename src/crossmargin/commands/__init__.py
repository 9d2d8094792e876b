"""The command-line commands, one module per area; :mod:`crossmargin.cli` assembles them."""
