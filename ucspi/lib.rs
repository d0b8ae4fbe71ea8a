//! UCSPI tools with no mail knowledge: tcpserver, tcpclient, tcprules and their companions.
