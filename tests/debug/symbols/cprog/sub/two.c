/* two.c: the other half of the program of ../one.c, in a subdirectory (for file matching). */
int compute(int n);

static int helper(int y)
{
    return y - 1;
}

void _start(void)
{
    volatile int r = compute(5) + helper(2);
    (void)r;
    for (;;)
        ;
}
