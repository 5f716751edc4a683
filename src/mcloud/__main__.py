from mcloud.cli import main

main()
