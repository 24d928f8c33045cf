<?xml version="1.0" encoding="UTF-8"?>
<!--
  csv2sr release summary (<release>, written by csv2sr.release.build_summary)
  -> one self-contained HTML page: inline CSS, inline SVG, no script, no network.
  XSLT 1.0 (libxslt through lxml). Links are relative to the report folder:
  sr/... (one page per SR), ../reports/... (validator text), ../dumps/... (dcsrdump).
-->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:variable name="errors" select="sum(/release/validation/severity[@name='error']/@count)"/>
  <xsl:variable name="rejected" select="number(/release/counts/@rejected)"/>
  <xsl:variable name="bars-width" select="300"/>
  <xsl:variable name="bars-height" select="100"/>

  <xsl:template match="/release">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title>Release <xsl:value-of select="@name"/>-<xsl:value-of select="@version"/></title>
        <style>
          body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
                 max-width: 75em; padding: 0 1em; color: #1b1f23; line-height: 1.4; }
          h1 { margin-bottom: .2em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em;
          margin-top: 1.8em; }
          table { border-collapse: collapse; margin: .5em 0; }
          th, td { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left;
                   vertical-align: top; }
          th { background: #f6f8fa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
          code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em;
                        overflow-wrap: anywhere; }
          .verdict { display: inline-block; padding: .4em .8em; border-radius: .3em;
                     font-weight: bold; }
          .ok { background: #dafbe1; color: #116329; } .bad { background: #ffebe9; color: #a40e26; }
          .error { color: #a40e26; font-weight: bold; } .warning { color: #9a6700; }
          .muted { color: #57606a; } svg { background: #fbfbfc; }
          svg rect.bar { fill: #4c72b0; } svg text { font-size: 10px; fill: #57606a; }
          dl.facts { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
          dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; }
        </style>
      </head>
      <body>
        <h1>Release <span id="release-name"><xsl:value-of select="@name"/>-<xsl:value-of select="@version"/></span></h1>
        <p class="muted">Profile <code><xsl:value-of select="@profile"/></code>, made by
          <xsl:value-of select="@generator"/> from <code><xsl:value-of select="input/@file"/></code>
          (SHA-256 <code><xsl:value-of select="input/@sha256"/></code>).</p>
        <xsl:call-template name="verdict"/>
        <xsl:apply-templates select="counts"/>
        <xsl:apply-templates select="tallies/tally"/>
        <xsl:apply-templates select="rejected"/>
        <xsl:apply-templates select="validation"/>
        <xsl:apply-templates select="uids"/>
        <xsl:apply-templates select="roundtrip"/>
        <xsl:apply-templates select="tools"/>
        <xsl:apply-templates select="timings"/>
        <xsl:apply-templates select="files"/>
      </body>
    </html>
  </xsl:template>

  <xsl:template name="verdict">
    <p id="verdict">
      <xsl:choose>
        <xsl:when test="$rejected = 0 and $errors = 0 and /release/validation/@ran = 'yes'">
          <span class="verdict ok">Ready to publish: every row converted, no validation error.</span>
        </xsl:when>
        <xsl:otherwise>
          <span class="verdict bad">Not ready to publish:
            <xsl:value-of select="$rejected"/> rejected row(s),
            <xsl:value-of select="$errors"/> validation error(s)<xsl:if
              test="/release/validation/@ran != 'yes'">, validation not run</xsl:if>.</span>
        </xsl:otherwise>
      </xsl:choose>
    </p>
  </xsl:template>

  <xsl:template match="counts">
    <h2 id="counts">Rows and files</h2>
    <table>
      <tr><th>Rows read</th><td class="n" id="count-rows"><xsl:value-of select="@rows"/></td></tr>
      <tr><th>Converted</th><td class="n" id="count-converted"><xsl:value-of select="@converted"/></td></tr>
      <tr><th>Rejected</th><td class="n" id="count-rejected"><xsl:value-of select="@rejected"/></td></tr>
      <tr><th>SR files</th><td class="n" id="count-files"><xsl:value-of select="@files"/></td></tr>
      <tr><th>Patients</th><td class="n"><xsl:value-of select="@patients"/></td></tr>
      <tr><th>Observers</th><td class="n"><xsl:value-of select="@observers"/></td></tr>
    </table>
  </xsl:template>

  <!-- ================================================================ tallies -->
  <!-- One table per column of the profile's report.tally: rows per value (and its label,
       e.g. a collection); the first also shows the distribution of the first measurement's
       values of the converted rows (the last bar counts every value beyond the axis). -->
  <xsl:template match="tally">
    <xsl:variable name="histograms" select="@histograms = 'yes'"/>
    <xsl:variable name="labelled" select="value[@label != '']"/>
    <h2 class="tally-title" id="tally-{@column}">Rows by <code><xsl:value-of select="@column"/></code></h2>
    <xsl:if test="$histograms">
      <p class="muted">With the distribution of <code><xsl:value-of select="../@value-column"/></code>
        (<xsl:value-of select="../@unit"/>) of the converted rows; the last bar counts every
        value beyond the axis.</p>
    </xsl:if>
    <table class="tally-table" data-column="{@column}">
      <tr><th><xsl:value-of select="@column"/></th><xsl:if test="$labelled"><th>Label</th></xsl:if>
        <th>Rows</th><th>Converted</th><th>Rejected</th><th>Patients</th><th>Observers</th>
        <xsl:if test="$histograms"><th><xsl:value-of select="../@value-column"/> min / median / max</th>
          <th>Distribution</th></xsl:if></tr>
      <xsl:for-each select="value">
        <tr class="tally-value" data-value="{@name}">
          <td><code><xsl:value-of select="@name"/></code></td>
          <xsl:if test="$labelled"><td><xsl:value-of select="@label"/></td></xsl:if>
          <td class="n"><xsl:value-of select="@rows"/></td>
          <td class="n"><xsl:value-of select="@converted"/></td>
          <td class="n"><xsl:value-of select="@rejected"/></td>
          <td class="n"><xsl:value-of select="@patients"/></td>
          <td class="n"><xsl:value-of select="@observers"/></td>
          <xsl:if test="$histograms">
            <td class="n"><xsl:for-each select="values"><xsl:value-of select="@min"/> / <xsl:value-of
              select="@median"/> / <xsl:value-of select="@max"/></xsl:for-each></td>
            <td><xsl:apply-templates select="histogram"/></td>
          </xsl:if>
        </tr>
      </xsl:for-each>
    </table>
  </xsl:template>

  <xsl:template match="histogram[@max-count = 0]">
    <span class="muted">no converted row</span>
  </xsl:template>

  <xsl:template match="histogram">
    <xsl:variable name="max" select="number(@max-count)"/>
    <xsl:variable name="bw" select="$bars-width div number(@bins)"/>
    <xsl:variable name="unit" select="../../../@unit"/>
    <svg class="histogram" width="{$bars-width + 40}" height="{$bars-height + 30}"
         viewBox="0 0 {$bars-width + 40} {$bars-height + 30}" role="img">
      <title><xsl:value-of select="../../../@value-column"/> of <xsl:value-of select="../@name"/></title>
      <line x1="30" y1="{$bars-height + 5}" x2="{$bars-width + 30}" y2="{$bars-height + 5}"
            stroke="#8c959f"/>
      <text x="26" y="12" text-anchor="end"><xsl:value-of select="$max"/></text>
      <text x="26" y="{$bars-height + 5}" text-anchor="end">0</text>
      <text x="30" y="{$bars-height + 18}">0</text>
      <text x="{$bars-width + 30}" y="{$bars-height + 18}" text-anchor="end">&#8805;<xsl:value-of
        select="bin[last()]/@lo"/><xsl:text> </xsl:text><xsl:value-of select="$unit"/></text>
      <xsl:variable name="mid" select="bin[position() = floor(count(../bin) div 2) + 1]"/>
      <text x="{30 + number($mid/@i) * $bw}" y="{$bars-height + 18}" text-anchor="middle"><xsl:value-of
        select="$mid/@lo"/></text>
      <xsl:for-each select="bin[@count &gt; 0]">
        <xsl:variable name="h" select="number(@count) div $max * $bars-height"/>
        <rect class="bar" x="{30 + number(@i) * $bw + 0.5}" y="{5 + $bars-height - $h}"
              width="{$bw - 1}" height="{$h}">
          <title><xsl:value-of select="@lo"/>
            <xsl:choose>
              <xsl:when test="@hi">–<xsl:value-of select="@hi"/></xsl:when>
              <xsl:otherwise> or more</xsl:otherwise>
            </xsl:choose>
            <xsl:text> </xsl:text><xsl:value-of select="$unit"/>: <xsl:value-of select="@count"/></title>
        </rect>
      </xsl:for-each>
    </svg>
  </xsl:template>

  <!-- ================================================================ rejected -->
  <xsl:template match="rejected">
    <h2 id="rejected">Rejected rows (<xsl:value-of select="@count"/>)</h2>
    <xsl:choose>
      <xsl:when test="row">
        <p>These rows made no SR; fix them in the table and run the release again
          (all of them are in <a href="../rejected.csv">rejected.csv</a>).</p>
        <table id="rejected-table">
          <tr><th>Line</th><th><xsl:value-of select="@key"/></th><th><xsl:value-of
            select="row[1]/cell/@name"/></th><th>Patient</th><th>Reason</th></tr>
          <xsl:for-each select="row">
            <tr class="rejected-row">
              <td class="n"><xsl:value-of select="@line"/></td>
              <td class="mono"><xsl:value-of select="@key"/></td>
              <td><xsl:value-of select="cell/@value"/></td>
              <td class="mono"><xsl:value-of select="@patient"/></td>
              <td><xsl:value-of select="reason"/></td>
            </tr>
          </xsl:for-each>
        </table>
      </xsl:when>
      <xsl:otherwise><p>None: every row was converted.</p></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- ================================================================ validation -->
  <xsl:template match="validation">
    <h2 id="validation">Validation findings</h2>
    <xsl:choose>
      <xsl:when test="@ran != 'yes'"><p class="bad">Validation did not run.</p></xsl:when>
      <xsl:otherwise>
        <p><xsl:value-of select="@files"/> file(s) checked.
          <xsl:for-each select="severity">
            <span class="{@name}" data-severity="{@name}"><xsl:value-of select="@count"/><xsl:text> </xsl:text><xsl:value-of
              select="@name"/>(s)</span><xsl:if test="position() != last()">, </xsl:if>
          </xsl:for-each>
          <xsl:if test="not(severity)">No finding at all.</xsl:if></p>
        <xsl:if test="source">
          <table id="findings-by-source">
            <tr><th>Source</th><th>Errors</th><th>Warnings</th><th>Other</th></tr>
            <xsl:for-each select="source">
              <tr><td><code><xsl:value-of select="@name"/></code></td>
                <td class="n"><xsl:value-of select="@errors"/></td>
                <td class="n"><xsl:value-of select="@warnings"/></td>
                <td class="n"><xsl:value-of select="@infos"/></td></tr>
            </xsl:for-each>
          </table>
          <table id="findings">
            <tr><th>Severity</th><th>Source</th><th>Message</th><th>Count</th><th>Files (reports)</th></tr>
            <xsl:for-each select="message[@severity != 'info']">
              <tr class="finding">
                <td class="{@severity}"><xsl:value-of select="@severity"/></td>
                <td><code><xsl:value-of select="@source"/></code></td>
                <td><xsl:value-of select="text"/></td>
                <td class="n"><xsl:value-of select="@count"/> in <xsl:value-of select="@files"/> file(s)</td>
                <td>
                  <xsl:for-each select="in">
                    <xsl:choose>
                      <xsl:when test="@report != ''"><a class="report-link" href="{@report}"><xsl:value-of
                        select="@file"/></a></xsl:when>
                      <xsl:otherwise><xsl:value-of select="@file"/></xsl:otherwise>
                    </xsl:choose>
                    <xsl:if test="@where != ''"> <span class="muted"> (<xsl:value-of select="@where"/>)</span></xsl:if>
                    <xsl:if test="@detail != ''"> <span class="muted"> “<xsl:value-of select="@detail"/>”</span></xsl:if>
                    <br/>
                  </xsl:for-each>
                  <xsl:if test="count(in) &lt; @count"><span class="muted">… and others (see the file list)</span></xsl:if>
                </td>
              </tr>
            </xsl:for-each>
          </table>
          <xsl:if test="message[@severity = 'info']">
            <details>
              <summary>Informational findings (<xsl:value-of select="sum(message[@severity = 'info']/@count)"/>)</summary>
              <ul>
                <xsl:for-each select="message[@severity = 'info']">
                  <li><code><xsl:value-of select="@source"/></code>: <xsl:value-of select="text"/>
                    (<xsl:value-of select="@count"/> in <xsl:value-of select="@files"/> file(s))</li>
                </xsl:for-each>
              </ul>
            </details>
          </xsl:if>
        </xsl:if>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="uids">
    <h2 id="uids">UIDs</h2>
    <table>
      <tr><th>UID</th><th>Distinct</th><th>Repeated</th></tr>
      <xsl:for-each select="uid">
        <tr class="uid"><td><xsl:value-of select="@kind"/></td><td class="n"><xsl:value-of select="@distinct"/></td>
          <td class="n">
            <xsl:if test="@unique = 'yes' and @repeats != '0'"><xsl:attribute name="class">n error</xsl:attribute></xsl:if>
            <xsl:value-of select="@repeats"/>
            <xsl:if test="@unique = 'yes'"> (must be 0)</xsl:if></td></tr>
      </xsl:for-each>
    </table>
  </xsl:template>

  <xsl:template match="roundtrip">
    <h2 id="roundtrip">Round trip (SR -&gt; table)</h2>
    <xsl:choose>
      <xsl:when test="@ran != 'yes'"><p>The export stage did not run.</p></xsl:when>
      <xsl:otherwise>
        <p><a href="../export.csv">export.csv</a>: <xsl:value-of select="@exported"/> row(s) read back;
          <xsl:value-of select="@matched"/> match the input on <code><xsl:value-of select="@compared-columns"/></code>;
          <span id="roundtrip-mismatches"><xsl:value-of select="@mismatches"/></span> mismatch(es).</p>
        <xsl:if test="mismatch">
          <table><tr><th>Row</th><th>Column</th><th>CSV</th><th>SR</th></tr>
            <xsl:for-each select="mismatch">
              <tr><td><xsl:value-of select="@key"/></td><td><xsl:value-of select="@column"/></td>
                <td class="mono"><xsl:value-of select="@csv"/></td><td class="mono"><xsl:value-of select="@sr"/></td></tr>
            </xsl:for-each>
          </table>
        </xsl:if>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="tools">
    <h2 id="tools">Tools</h2>
    <table id="tool-table">
      <tr><th>Tool</th><th>Version</th></tr>
      <xsl:for-each select="tool">
        <tr class="tool"><td><xsl:value-of select="@name"/></td><td class="mono"><xsl:value-of select="@version"/></td></tr>
      </xsl:for-each>
    </table>
  </xsl:template>

  <xsl:template match="timings">
    <xsl:if test="stage">
      <h2 id="timings">Stage timings</h2>
      <table>
        <tr><th>Stage</th><th>Exit status</th><th>Seconds</th></tr>
        <xsl:for-each select="stage">
          <tr><td><xsl:value-of select="@name"/></td><td class="n"><xsl:value-of select="@status"/></td>
            <td class="n"><xsl:value-of select="@seconds"/></td></tr>
        </xsl:for-each>
      </table>
    </xsl:if>
  </xsl:template>

  <!-- ================================================================ files -->
  <xsl:template match="files">
    <h2 id="files">SR files (<xsl:value-of select="@count"/>)</h2>
    <details>
      <summary>One line per SR: its page, its validation report and its dcsrdump</summary>
      <table id="file-table">
        <tr><th><xsl:value-of select="@key"/></th><th>Rows</th><th>Patient</th><th><xsl:value-of
          select="file[1]/cell/@name"/></th><th><xsl:value-of select="@value-column"/></th><th>Errors</th>
          <th>Warnings</th><th>SR</th><th>Report</th><th>Dump</th></tr>
        <xsl:for-each select="file">
          <tr class="file">
            <td class="mono"><xsl:value-of select="@key"/></td>
            <td class="n"><xsl:value-of select="@rows"/></td>
            <td class="mono"><xsl:value-of select="@patient"/></td>
            <td><xsl:value-of select="cell/@value"/></td>
            <td class="n"><xsl:value-of select="@value"/></td>
            <td class="n"><xsl:if test="@errors != '0'"><xsl:attribute name="class">n error</xsl:attribute></xsl:if><xsl:value-of select="@errors"/></td>
            <td class="n"><xsl:value-of select="@warnings"/></td>
            <td><a class="sr-link" href="{@page}">content</a></td>
            <td><xsl:if test="@report != ''"><a class="report-link" href="{@report}">report</a></xsl:if></td>
            <td><xsl:if test="@dump != ''"><a class="dump-link" href="{@dump}">dump</a></xsl:if></td>
          </tr>
        </xsl:for-each>
      </table>
    </details>
  </xsl:template>
</xsl:stylesheet>
