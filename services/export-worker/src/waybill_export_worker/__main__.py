from waybill_export_worker.main import main

main()
