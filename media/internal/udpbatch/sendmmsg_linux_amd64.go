package udpbatch

// sysSendmmsg is the system call number of sendmmsg(2) (not in package syscall on amd64).
const sysSendmmsg = 307
