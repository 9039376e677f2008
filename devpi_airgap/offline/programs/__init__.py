"""Programs that run on the server itself, with its python3 and the standard library alone.

Each is a real module here, so it can be read, linted and tested like any other;
`Host.run_program` ships its source as an argument (never on stdin, which
Invoke feeds one byte per 10 ms) and passes its arguments after it.
"""
