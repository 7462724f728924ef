module github.com/lance-go/lance/lnc-io

go 1.26.0

require github.com/lance-go/lance/lnc-core v0.0.0

require golang.org/x/sys v0.50.0

replace github.com/lance-go/lance/lnc-core => ../lnc-core
