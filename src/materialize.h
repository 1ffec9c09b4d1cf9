/* vmunion materialize and verify: write the merged view onto a real
 * directory, and compare a directory with it. */
#ifndef VMUNION_MATERIALIZE_H
#define VMUNION_MATERIALIZE_H

/* Both take argv[0] = the command name and return the process exit status. */
int command_materialize(int argc, char **argv);
int command_verify(int argc, char **argv);

#endif
