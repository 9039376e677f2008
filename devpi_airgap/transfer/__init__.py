"""The transfer wing: write bundles to carry across the gap, and check them before anything is taken."""
