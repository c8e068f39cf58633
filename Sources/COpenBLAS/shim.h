#include <cblas.h>
#include <lapacke.h>
// OpenBLAS's own controls (declared in cblas.h of OpenBLAS, repeated for clarity).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
