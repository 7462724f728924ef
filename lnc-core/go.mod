module github.com/lance-go/lance/lnc-core

go 1.26
