/* stress_lib.c: a small library for loader_stress to load and unload. */
int stress_lib_value(void)
{
    return 42;
}
