"""Programs run by another python than ours, such as the one of a venv under test, with its standard library alone."""
