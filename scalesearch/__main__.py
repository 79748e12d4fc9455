from scalesearch.cli import main

main()
