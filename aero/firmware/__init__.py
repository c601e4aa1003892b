"""Host-side firmware support: ACPI and SMBIOS table builders, BIOS services, loaders."""
