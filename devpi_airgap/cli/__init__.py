"""The task layer's output: turns the wings' results into tables and lines for the terminal."""
