module kernelcheck

go 1.26
