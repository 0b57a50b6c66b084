from shopfloor.cli import main

main()
