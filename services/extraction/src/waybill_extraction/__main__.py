from waybill_extraction.main import main

main()
