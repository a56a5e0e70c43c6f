"""The temporalio switch: stand-ins for temporalio modules the engine answers itself."""
