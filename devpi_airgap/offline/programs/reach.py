"""reach.py URL: exit 0 when this server can reach URL (a replica asking for its primary's /+api)."""

import sys
import urllib.request


def main() -> None:
    urllib.request.urlopen(sys.argv[1], timeout=10).read()


if __name__ == "__main__":
    main()
