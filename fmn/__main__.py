from fmn.cli import cli

cli()
