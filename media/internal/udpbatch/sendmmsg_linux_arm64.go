package udpbatch

// sysSendmmsg is the system call number of sendmmsg(2).
const sysSendmmsg = 269
