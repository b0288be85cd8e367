"""`python -m batchkit.simulate`: the same as `batchkit simulate`."""

from batchkit.cli.simulate import main

if __name__ == "__main__":
    main()
