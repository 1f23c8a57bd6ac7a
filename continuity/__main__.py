"""python -m continuity: the command line."""

from continuity.cli.main import main

if __name__ == "__main__":
    main()
