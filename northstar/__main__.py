from northstar.cli import app

app(prog_name="northstar")
