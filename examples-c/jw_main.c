/* jw_main.c -- the jobwire-worker program: libjobwire's worker with the
 * conformance job classes of protocol.md section 10 registered, the same
 * way a user's program registers its own handlers (jobwire.h). */
#include "jobwire.h"

int main(int argc, char **argv) {
    jw_register_conformance_jobs();
    return jw_worker_main(argc, argv);
}
