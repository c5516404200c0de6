from studies.transfer_study.study import main

main()
