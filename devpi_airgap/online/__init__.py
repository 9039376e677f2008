"""The online wing: resolve, fetch, build, verify and refresh wheelhouses on a machine with an index."""
