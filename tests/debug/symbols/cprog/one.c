/* one.c: half of a freestanding 32-bit C program for tests/debug/test_symbols.py (built at test
 * time with gcc -m32 -g when it works; see the test).  Both halves define a static helper(). */
static int counter;
int data_table[4] = {1, 2, 3, 4};

static int helper(int x)
{
    counter += x;
    return counter * 2;
}

int compute(int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += helper(i);
    return s;
}
