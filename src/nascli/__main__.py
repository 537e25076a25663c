from nascli.cli import main

main()
