<?xml version="1.0" encoding="UTF-8"?>
<!--
  One SR, as csv2sr.report_xml.sr_to_xml renders it (<sr><header/><evidence/><content/>),
  -> a readable HTML page of its content tree, in the manner of DCMTK dsr2html.
  Parameters (relative links, empty when absent): index, report, dump, dcm.
-->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>
  <xsl:param name="index" select="''"/>
  <xsl:param name="report" select="''"/>
  <xsl:param name="dump" select="''"/>
  <xsl:param name="dcm" select="''"/>

  <xsl:template match="/sr">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <title><xsl:value-of select="content/item/concept/@meaning"/> – <xsl:value-of select="@path"/></title>
        <style>
          body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em;
                 color: #1b1f23; line-height: 1.45; }
          nav a { margin-right: 1em; }
          table { border-collapse: collapse; } th, td { text-align: left; padding: .15em .8em .15em 0;
          vertical-align: top; } th { color: #57606a; font-weight: normal; }
          ul.tree, ul.tree ul { list-style: none; padding-left: 1.4em; border-left: 1px dotted #d0d7de; }
          ul.tree { padding-left: .4em; border: 0; }
          li { margin: .2em 0; }
          .id { color: #8c959f; font-size: .8em; font-family: ui-monospace, monospace; }
          .rel { color: #6e40c9; font-size: .8em; text-transform: lowercase; }
          .type { color: #57606a; font-size: .75em; border: 1px solid #d0d7de; border-radius: .2em;
                  padding: 0 .25em; }
          .concept { font-weight: bold; }
          .code { color: #57606a; font-size: .85em; }
          .mono, .uid { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85em;
                        overflow-wrap: anywhere; }
        </style>
      </head>
      <body>
        <nav>
          <xsl:if test="$index != ''"><a id="back" href="{$index}">Release report</a></xsl:if>
          <xsl:if test="$report != ''"><a href="{$report}">Validation report</a></xsl:if>
          <xsl:if test="$dump != ''"><a href="{$dump}">dcsrdump</a></xsl:if>
          <xsl:if test="$dcm != ''"><a href="{$dcm}">DICOM file</a></xsl:if>
        </nav>
        <h1><xsl:value-of select="content/item/concept/@meaning"/></h1>
        <p class="mono"><xsl:value-of select="@path"/> — <xsl:value-of select="@sop-class-name"/></p>
        <h2>Document</h2>
        <table id="header">
          <xsl:for-each select="header/field">
            <tr><th><xsl:value-of select="@name"/></th><td class="mono"><xsl:value-of select="."/></td></tr>
          </xsl:for-each>
        </table>
        <h2>Content</h2>
        <ul class="tree" id="content"><xsl:apply-templates select="content/item"/></ul>
        <xsl:if test="evidence/series">
          <h2>Evidence</h2>
          <table>
            <tr><th>Study</th><th>Series</th><th>Instances</th></tr>
            <xsl:for-each select="evidence/series">
              <tr><td class="uid"><xsl:value-of select="@study"/></td><td class="uid"><xsl:value-of select="@uid"/></td>
                <td><xsl:for-each select="reference"><span class="uid"><xsl:value-of select="@sop-instance"/></span>
                  (<xsl:value-of select="@sop-class-name"/>)<br/></xsl:for-each></td></tr>
            </xsl:for-each>
          </table>
        </xsl:if>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <li class="item" data-type="{@type}">
      <span class="id"><xsl:value-of select="@id"/></span><xsl:text> </xsl:text>
      <xsl:if test="@relationship != ''"><span class="rel"><xsl:value-of select="@relationship"/></span><xsl:text> </xsl:text></xsl:if>
      <span class="type"><xsl:value-of select="@type"/></span><xsl:text> </xsl:text>
      <xsl:for-each select="concept">
        <span class="concept"><xsl:value-of select="@meaning"/></span>
        <span class="code"> (<xsl:value-of select="@value"/>, <xsl:value-of select="@scheme"/>)</span>
      </xsl:for-each>
      <xsl:if test="@by-reference"> → item <xsl:value-of select="@by-reference"/></xsl:if>
      <xsl:apply-templates select="text|code|num|reference|graphic" mode="value"/>
      <xsl:if test="@template"> <span class="code"> [template <xsl:value-of select="@template"/>]</span></xsl:if>
      <xsl:if test="item"><ul><xsl:apply-templates select="item"/></ul></xsl:if>
    </li>
  </xsl:template>

  <xsl:template match="text" mode="value"> = <span class="value">“<xsl:value-of select="."/>”</span></xsl:template>
  <xsl:template match="code" mode="value"> = <span class="value"><xsl:value-of select="@meaning"/></span>
    <span class="code"> (<xsl:value-of select="@value"/>, <xsl:value-of select="@scheme"/>)</span></xsl:template>
  <xsl:template match="num" mode="value"> = <span class="value num"><xsl:value-of select="@value"/><xsl:text> </xsl:text><xsl:value-of
    select="unit/@value"/></span><span class="code"> (<xsl:value-of select="unit/@meaning"/>, <xsl:value-of select="unit/@scheme"/>)</span></xsl:template>
  <xsl:template match="reference" mode="value"> = <span class="value"><xsl:value-of select="@sop-class-name"/></span>
    <span class="uid"><xsl:text> </xsl:text><xsl:value-of select="@sop-instance"/></span>
    <xsl:if test="@frames"> frames <xsl:value-of select="@frames"/></xsl:if></xsl:template>
  <xsl:template match="graphic" mode="value"> = <span class="value"><xsl:value-of select="@type"/></span>
    <span class="mono"><xsl:text> </xsl:text><xsl:value-of select="@points"/></span></xsl:template>
</xsl:stylesheet>
