from boternity.cli import main

main()
