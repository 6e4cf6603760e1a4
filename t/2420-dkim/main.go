// Command 2420-dkim signs a message for t/2420-accept-dkim.t with
// go-msgauth, as a sender's MTA would: 2420-dkim KEY.pem DOMAIN SELECTOR
// < message > signed message. A test helper, not part of mf.
package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"github.com/emersion/go-msgauth/dkim"
)

func main() {
	if err := sign(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "2420-dkim:", err)
		os.Exit(1)
	}
}

func sign(args []string, in io.Reader, out io.Writer) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: 2420-dkim KEY.pem DOMAIN SELECTOR")
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("%s: no PEM block", args[0])
	}
	var key crypto.Signer
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		key = k.(crypto.Signer)
	} else {
		return fmt.Errorf("%s: not an RSA key", args[0])
	}
	msg, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	var signed bytes.Buffer
	err = dkim.Sign(&signed, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: args[1], Selector: args[2], Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID"},
	})
	if err != nil {
		return err
	}
	// Back to LF line ends, as the MTA hands the message to the stages.
	_, err = out.Write(bytes.ReplaceAll(signed.Bytes(), []byte("\r\n"), []byte("\n")))
	return err
}
