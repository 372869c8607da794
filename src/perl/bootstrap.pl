#line 1 "ipcperl bootstrap"
# What ipcperl runs in each child's interpreter before loading file.pm
# (src/bin/ipcperl.rs, through src/perl/shim.c, whose ipcperl_call puts a
# count of the strings that follow first). It defines two entry points,
# which return undef for success or a message:
#   IPCPerl::load(2, FILE, SUB) once per child: loads FILE, checks SUB
#   IPCPerl::handle(N, ENV..., ARGS...)
#                               per connection: N environment entries
#                               (NAME=VALUE), then the handler's arguments
# and makes exit flush the handler's output first.

package IPCPerl;

# The handler's subroutine, fully qualified.
our $sub;

# Whether STDIN and STDOUT have been opened on the connections'
# descriptors (the first call does it).
our $opened;

# Flushes STDOUT (whichever handle that name holds now) and keeps its
# autoflush setting.
sub flush {
    my $selected = select STDOUT;
    my $autoflush = $|;
    $| = 1;
    $| = $autoflush;
    select $selected;
    return;
}

# Compiled before file.pm: every `exit` in it delivers what the handler
# printed, then exits as CORE::exit does.
*CORE::GLOBAL::exit = sub (;$) {
    IPCPerl::flush();
    CORE::exit(@_ ? $_[0] : 0);
};

sub load {
    my (undef, $file, $name) = @_;
    $sub = $name =~ /::|'/ ? $name : "main::$name";
    # `do` searches @INC for a relative name unless it starts with ./ or ../
    my $path = $file =~ m{\A\.{0,2}/} ? $file : "./$file";
    my ($loaded, $error, $errno) = IPCPerl::Main::load($path);
    # Anything printed while loading went to /dev/null: leave no buffered
    # output behind for the first connection.
    IPCPerl::flush();
    unless ($loaded) {
        return $error if $error ne '';
        return lcfirst $errno unless defined $loaded;
        return "it did not return a true value";
    }
    my ($package) = $sub =~ /\A(.*)(?:::|')/s;
    no strict 'refs';
    return "it defines no subroutine $sub"
        unless defined &$sub || exists &$sub || defined &{"${package}::AUTOLOAD"};
    # The environment every connection starts from, in the form Perl's
    # restore of %ENV leaves it (one entry per name, no entry without =):
    # so that a call's changes are what the C environment shows, if any.
    my %env = %ENV;
    %ENV = %env;
    return;
}

sub handle {
    my $n = shift;
    # The connection's environment, in %ENV and (by Perl's magic) in the C
    # environment, until this returns: the next connection gets its own,
    # whatever this one's handler did to it.
    local %ENV = map {
        my $i = index $_, '=';
        $i < 0 ? () : (substr($_, 0, $i), substr($_, $i + 1))
    } splice @_, 0, $n;
    # STDIN and STDOUT are handles on the connection (descriptors 0 and 1,
    # where every connection goes). What a handler left unread, or an end
    # of file it reached, must stay with its own connection: STDIN is
    # replaced by a new handle unless it holds nothing read ahead
    # (stdin_clean, in src/perl/shim.c, also clears its end of file);
    # STDOUT, flushed after every call, unless a handler closed or moved
    # it. A new handle costs system calls; reusing one costs none. The
    # first call makes both. Only the IO slot is replaced (reopening STDIN
    # on its own descriptor would keep its buffer), and PerlIO counts the
    # users of a descriptor, so the old handle going does not close 0 or 1.
    # $| is the load-time STDOUT's, whatever a call sets.
    select STDOUT;
    my $autoflush = $|;
    if (!$opened || !IPCPerl::stdin_clean()) {
        open my $in, '<&=', 0 or return "unable to open descriptor 0: $!";
        *STDIN = *$in{IO};
    }
    if (!$opened || (fileno(STDOUT) // -1) != 1) {
        open my $out, '>&=', 1 or return "unable to open descriptor 1: $!";
        *STDOUT = *$out{IO};
        $opened = 1;
    }
    $| = $autoflush;
    my $error;
    {
        local $@;
        no strict 'refs';
        $error = "$@" unless eval { &$sub(@_); 1 };
    }
    # Deliver every byte the handler printed, whether it returned or died.
    IPCPerl::flush();
    select STDOUT;
    $| = $autoflush;
    return $error;
}

package IPCPerl::Main;

# Compiles and runs FILE in package main, as a program's own code would be,
# without the lexicals above in sight. Returns what `do` returned, $@ and $!.
sub load {
    package main;
    my $loaded = do $_[0];
    return ($loaded, "$@", "$!");
}

1;
