from malcapture.cli import main

main()
