from dfseg.cli.app import main

main()
