import socket, sys, time
port=int(sys.argv[1])
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR,1); s.bind(("127.0.0.1",port)); s.listen(1)
c,_=s.accept()
c.settimeout(0.5)
log=open("/tmp/pa-cap/host.log","ab")
while True:
    try:
        d=c.recv(1024)
        if not d: break
        log.write(d); log.flush()
        c.sendall(b"echo:"+d)
    except socket.timeout:
        pass
