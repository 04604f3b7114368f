from waybill_tracker.main import main

main()
