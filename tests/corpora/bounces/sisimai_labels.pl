# Expert labels for the corpus: Sisimai (Debian libsisimai-perl 4.25.15) over each file.
#   cd tests/corpora/bounces && perl sisimai_labels.pl */*.eml > sisimai-4.25.15.json
# Sisimai 4 has no hardbounce flag: softbounce is 1 (soft), 0 (hard) or -1 (unknown).
use strict; use warnings; use Sisimai; use JSON::PP;
my $out = {};
for my $f (@ARGV) {
    my $v = Sisimai->make($f, 'delivered' => 1, 'vacation' => 1) || [];
    my @r;
    for my $e (@$v) {
        push @r, { recipient => $e->recipient->address, reason => $e->reason, status => $e->deliverystatus,
                   action => $e->action,
                   agent => $e->smtpagent, feedbacktype => $e->feedbacktype, diag => substr($e->diagnosticcode // '', 0, 200),
                   replycode => $e->replycode, softbounce => $e->softbounce };
    }
    $out->{$f} = \@r;
}
print JSON::PP->new->canonical->pretty->encode($out);
