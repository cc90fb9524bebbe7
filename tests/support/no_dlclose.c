/* no_dlclose.c: LD_PRELOADed into the MPI tests of the sanitizer build only.
 * Open MPI dlopen()s its components and dlclose()s them in MPI_Finalize, so
 * what they allocated and keep for the life of the process shows up in
 * LeakSanitizer's report with no module to name ("<unknown module>") and
 * cannot be suppressed by name. Keeping every shared object mapped lets the
 * report name the component (mca_*.so: tests/lsan.supp) while mpifit's own
 * leaks are still reported. Never part of the product. */
int dlclose(void *handle);
int dlclose(void *handle)
{
    (void)handle;
    return 0;
}
